"""The pictures ``skae compare`` writes, drawn from the models it already fitted."""

import os


def _plot_size(sizes):
    """The latent size the pictures show: 2 when it was fitted, else the smallest."""
    return 2 if 2 in sizes else min(sizes)


def count_figures(sizes, image_shape):
    """How many figures :func:`write_figures` draws at most (for the progress bar).

    A figure with no model to show (no autoencoder fitted, say) writes no file
    but still advances the bar.
    """
    return int(bool(sizes) and _plot_size(sizes) >= 2) + 1 + (2 if image_shape is not None else 0)


def write_figures(table, held_out, image_shape, random_state, out, progress=None):
    """Latent scatters, loss curves, and for images reconstructions and samples.

    Parameters
    ----------
    table : pandas.DataFrame
        ``compare_reducers(..., return_estimator=True)``: the fitted models.
    held_out : skae.compare.HeldOut
        The split the models were fitted and scored on; the pictures show the
        held-out rows.
    image_shape : tuple of int or None
        Shape of one image, or None for tabular data.
    random_state : int or None
        Seeds the generated samples.
    out : str
        Folder to write the PNG files to.
    progress : tqdm progress bar or None, default=None
        Advanced by one per figure.

    Returns
    -------
    paths : list of str
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import LatentSpaceDisplay, LossCurveDisplay, ReconstructionDisplay, SampleDisplay

    sizes = list(table["n_components"])
    k = _plot_size(sizes) if sizes else 0
    models = list(table.loc[table["n_components"] == k, "estimator"])
    trained = [model for model in models if hasattr(model, "loss_curve_")]
    X_test, y_test = held_out.X_test, held_out.y_test
    # Clip the colours to the data's range: an mse decoder overshoots it.
    value_range = (float(held_out.X_train.min()), float(held_out.X_train.max()))
    written = []

    def figure(name, shown, draw, width, height, stacked=False):
        """Draw ``draw(model, ax)`` for each of ``shown`` into one PNG; none: no file."""
        if shown:
            rows, cols = (len(shown), 1) if stacked else (1, len(shown))
            fig, axes = plt.subplots(rows, cols, layout="constrained", squeeze=False,
                                     figsize=(width * cols, height * rows))
            for model, ax in zip(shown, axes.ravel()):
                draw(model, ax)
            path = os.path.join(out, name)
            fig.savefig(path, dpi=110)
            plt.close(fig)
            written.append(path)
        if progress is not None:
            progress.set_postfix_str(name)
            progress.update(1)

    if k >= 2:
        figure("latent_spaces.png", models, lambda model, ax: LatentSpaceDisplay.from_estimator(
            model, X_test, y_test, ax=ax, task=held_out.task or "auto"), 5, 4.5)
    figure("loss_curves.png", trained,
           lambda model, ax: LossCurveDisplay.from_estimator(model, ax=ax), 5.5, 4)
    if image_shape is not None:
        figure("reconstructions.png", models, lambda model, ax: ReconstructionDisplay.from_estimator(
            model, X_test, image_shape=image_shape, n_samples=12, ax=ax, value_range=value_range),
            10, 2.2, stacked=True)
        samplers = [model for model in trained if hasattr(model, "sample")]
        figure("samples.png", samplers, lambda model, ax: SampleDisplay.from_estimator(
            model, 36, image_shape=image_shape, random_state=random_state, ax=ax,
            value_range=value_range), 5, 5.4)
    return written
