"""The pictures ``skae compare`` writes, drawn from the models it already fitted."""

import os


def _plot_size(sizes):
    """The latent size the pictures show: 2 when it was fitted, else the smallest."""
    return 2 if 2 in sizes else min(sizes)


def count_figures(sizes, image_shape):
    """How many PNG files :func:`write_figures` writes (for the progress bar)."""
    return int(_plot_size(sizes) >= 2) + 1 + (2 if image_shape is not None else 0)


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
        Advanced by one per file.

    Returns
    -------
    paths : list of str
        The files written.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plotting import LatentSpaceDisplay, LossCurveDisplay, ReconstructionDisplay, SampleDisplay

    k = _plot_size(list(table["n_components"]))
    models = list(table.loc[table["n_components"] == k, "estimator"])
    trained = [model for model in models if hasattr(model, "loss_curve_")]
    X_test, y_test = held_out.X_test, held_out.y_test
    value_range = (float(held_out.X_train.min()), float(held_out.X_train.max()))
    written = []

    def save(figure, name):
        if progress is not None:
            progress.set_postfix_str(name)
        path = os.path.join(out, name)
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
        if progress is not None:
            progress.update(1)

    def panels(n, width, height, rows=1):
        figure, axes = plt.subplots(rows, 1 if rows > 1 else n, layout="constrained",
                                    figsize=(width * (1 if rows > 1 else n), height * rows),
                                    squeeze=False)
        return figure, axes.ravel()

    if k >= 2:
        figure, axes = panels(len(models), 5, 4.5)
        for model, ax in zip(models, axes):
            LatentSpaceDisplay.from_estimator(model, X_test, y_test, ax=ax)
        save(figure, "latent_spaces.png")
    figure, axes = panels(len(trained), 5.5, 4)
    for model, ax in zip(trained, axes):
        LossCurveDisplay.from_estimator(model, ax=ax)
    save(figure, "loss_curves.png")
    if image_shape is not None:
        figure, axes = panels(len(models), 10, 2.2, rows=len(models))
        for model, ax in zip(models, axes):
            ReconstructionDisplay.from_estimator(model, X_test, image_shape=image_shape,
                                                 n_samples=12, ax=ax, value_range=value_range)
        save(figure, "reconstructions.png")
        samplers = [model for model in trained if hasattr(model, "sample")]
        figure, axes = panels(len(samplers), 5, 5.4)
        for model, ax in zip(samplers, axes):
            # Clip the colours to the data's range: an mse decoder overshoots it.
            SampleDisplay.from_estimator(model, 36, image_shape=image_shape,
                                         random_state=random_state, ax=ax,
                                         value_range=value_range)
        save(figure, "samples.png")
    return written
