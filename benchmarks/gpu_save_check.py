"""Train on CUDA, save in skae's format, and record CPU outputs for a later comparison.

Run on a machine with a GPU: ``python benchmarks/gpu_save_check.py OUT_DIR``. It
writes ``OUT_DIR/<Class>.skae`` and ``OUT_DIR/<Class>_cpu.npz`` (the CPU
transform and samples of the same model moved to the CPU with ``pickle``), which
``skae.load`` on a CPU-only machine must reproduce bit for bit.
"""

import pickle
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

import skae
from skae import AutoencoderTransformer, VAETransformer

out = Path(sys.argv[1])
X = load_digits().data[:300] / 16
warnings.simplefilter("ignore")
print("torch", torch.__version__, "cuda", torch.cuda.is_available())
for cls in (AutoencoderTransformer, VAETransformer):
    est = cls(hidden_layer_sizes=(32,), max_iter=20, random_state=0, device="cuda").fit(X)
    assert est.device_.type == "cuda"
    est.save(out / f"{cls.__name__}.skae")
    cpu = skae.load(out / f"{cls.__name__}.skae", device="cpu")
    on_gpu = skae.load(out / f"{cls.__name__}.skae")
    assert on_gpu.device_.type == "cuda"
    via_pickle = pickle.loads(pickle.dumps(est))
    via_pickle.device_ = torch.device("cpu")
    via_pickle.encoder_.cpu(), via_pickle.decoder_.cpu()
    transform, sample = via_pickle.transform(X), via_pickle.sample(5, random_state=1)
    assert np.array_equal(cpu.transform(X), transform)
    assert np.array_equal(cpu.sample(5, random_state=1), sample)
    np.savez(out / f"{cls.__name__}_cpu.npz", transform=transform, sample=sample)
    print(cls.__name__, "saved on cuda, reloaded on cpu: identical")
