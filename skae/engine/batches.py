"""Row sources that are not one dense tensor: sparse rows densified a batch at a time.

The trainer and :func:`skae.engine.inference.apply_in_chunks` read their data
through a small part of the tensor interface: ``shape``, ``device``, ``dtype``,
``index_select(0, rows)`` (a shuffled batch) and slicing ``X[start:stop]`` (an
inference chunk). :class:`SparseRows` offers exactly that over a compressed
sparse row (CSR) matrix held as three plain tensors, and answers each request
with a *dense* tensor of the requested rows only, built on the matrix's device.
So a sparse matrix far too large to densify trains and infers with memory for
its non-zeros plus one dense batch.
"""

import torch

__all__ = ["SparseRows"]


class SparseRows:
    """A CSR matrix on a torch device that hands out dense rows.

    Parameters
    ----------
    indptr : torch.Tensor of shape (n_rows + 1,)
        Row pointers (int64): row ``i``'s entries are ``indptr[i]:indptr[i + 1]``.
    indices : torch.Tensor of shape (nnz,)
        Column of each stored entry (int64).
    values : torch.Tensor of shape (nnz,)
        Value of each stored entry; its dtype is the dtype of the dense rows.
    n_columns : int
        Number of columns.

    Notes
    -----
    Each (row, column) pair must be stored at most once (scipy's canonical
    format), as :func:`skae._sparse.sparse_rows` guarantees: duplicated
    entries would be written, not summed.
    """

    def __init__(self, indptr, indices, values, n_columns):
        self.indptr = indptr
        self.indices = indices
        self.values = values
        self.shape = (int(indptr.shape[0]) - 1, int(n_columns))

    @property
    def device(self):
        return self.values.device

    @property
    def dtype(self):
        return self.values.dtype

    @property
    def nnz(self):
        return int(self.values.shape[0])

    def to(self, device=None, dtype=None):
        """A copy on ``device`` with values of ``dtype`` (self if nothing changes)."""
        device = self.device if device is None else torch.device(device)
        dtype = self.dtype if dtype is None else dtype
        if device == self.device and dtype == self.dtype:
            return self
        return SparseRows(
            self.indptr.to(device),
            self.indices.to(device),
            self.values.to(device=device, dtype=dtype),
            self.shape[1],
        )

    def _positions(self, rows):
        """``(batch row of each entry, position of each entry)`` for ``rows``."""
        starts = self.indptr[rows]
        counts = self.indptr[rows + 1] - starts
        # One host sync per batch: the number of entries sizes the index tensors.
        total = int(counts.sum())
        batch_rows = torch.repeat_interleave(
            torch.arange(rows.shape[0], device=rows.device), counts, output_size=total
        )
        first = torch.cumsum(counts, 0) - counts
        positions = torch.arange(total, device=rows.device) - first[batch_rows]
        return batch_rows, positions + starts[batch_rows]

    def index_select(self, dim, rows):
        """The dense rows ``rows`` (a 1-D int64 tensor on ``device``), in that order."""
        if dim != 0:
            raise ValueError("SparseRows selects rows only (dim=0)")
        return self._fill(self._empty_block(rows.shape[0]), rows)

    def _empty_block(self, n_rows):
        # Callers allocate the dense block before any small index tensor: the
        # other order leaves each freed block's memory partly taken by the next
        # call's indices, and the CPU allocator then grows by about a block per
        # call (measured: +560 MiB over 100 inference chunks of 16 MB).
        return torch.zeros((n_rows, self.shape[1]), dtype=self.dtype, device=self.device)

    def _fill(self, dense, rows):
        batch_rows, positions = self._positions(rows)
        # One flat index rather than a (row, column) pair: under inference_mode
        # the pair form also left the allocator growing by hundreds of MiB.
        flat = batch_rows.mul_(self.shape[1]).add_(self.indices[positions])
        dense.view(-1)[flat] = self.values[positions]
        return dense

    def take(self, rows):
        """The rows ``rows`` as another :class:`SparseRows` (nothing densified)."""
        batch_rows, positions = self._positions(rows)
        counts = torch.bincount(batch_rows, minlength=rows.shape[0])
        indptr = torch.zeros(rows.shape[0] + 1, dtype=self.indptr.dtype, device=self.device)
        torch.cumsum(counts, 0, out=indptr[1:])
        return SparseRows(indptr, self.indices[positions], self.values[positions], self.shape[1])

    def __getitem__(self, key):
        if not isinstance(key, slice):
            raise TypeError("SparseRows supports row slices only")
        start, stop, step = key.indices(self.shape[0])
        dense = self._empty_block(len(range(start, stop, step)))
        return self._fill(dense, torch.arange(start, stop, step, device=self.device))

    def __len__(self):
        return self.shape[0]
