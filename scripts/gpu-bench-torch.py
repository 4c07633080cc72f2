#!/usr/bin/env python3
"""PyTorch half of scripts/gpu-bench.sh: the same networks and steps as dev.kiln.gpu.GpuBench.

For each network: fixed random data on the GPU, then timed steps of forward + cross-entropy +
backward + SGD-momentum (foreach) update, eager mode, fp32 (TF32 off, as Kiln computes in full
fp32) and, for ResNet-50, also TF32 and mixed precision (autocast bf16). Prints
"BENCH torch-<mode> <net> <batch> <ms/step> <samples/s> ... peak <MiB>" lines; median of --repeats
blocks; peak = torch.cuda.max_memory_allocated over the run.
"""
import argparse
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def mlp():
    return nn.Sequential(nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(), nn.Linear(512, 10))


def lenet():
    return nn.Sequential(nn.Conv2d(1, 20, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Conv2d(20, 50, 5), nn.ReLU(),
                         nn.MaxPool2d(2, 2), nn.Flatten(), nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))


class Bottleneck(nn.Module):
    def __init__(self, cin, w, stride, proj):
        super().__init__()
        self.c1, self.b1 = nn.Conv2d(cin, w, 1, bias=False), nn.BatchNorm2d(w)
        self.c2, self.b2 = nn.Conv2d(w, w, 3, stride, 1, bias=False), nn.BatchNorm2d(w)
        self.c3, self.b3 = nn.Conv2d(w, 4 * w, 1, bias=False), nn.BatchNorm2d(4 * w)
        self.proj = nn.Sequential(nn.Conv2d(cin, 4 * w, 1, stride, bias=False), nn.BatchNorm2d(4 * w)) if proj else None

    def forward(self, x):
        y = F.relu(self.b1(self.c1(x)))
        y = F.relu(self.b2(self.c2(y)))
        y = self.b3(self.c3(y))
        return F.relu(y + (self.proj(x) if self.proj is not None else x))


def resnet50(classes=1000):
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for stage, (units, w) in enumerate(zip([3, 4, 6, 3], [64, 128, 256, 512])):
        for u in range(units):
            layers.append(Bottleneck(cin, w, 2 if stage > 0 and u == 0 else 1, u == 0))
            cin = 4 * w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2048, classes)]
    return nn.Sequential(*layers)


def bench(name, model, shape, steps, repeats, mode):
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
    torch.backends.cudnn.allow_tf32 = mode == "tf32"
    torch.backends.cudnn.benchmark = True
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    model = model.to(dev)
    x = torch.randn(*shape, device=dev)
    y = torch.randint(0, 10, (shape[0],), device=dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4, foreach=True)

    def step():
        opt.zero_grad(set_to_none=True)
        if mode == "amp":
            with torch.autocast("cuda", dtype=torch.bfloat16):
                loss = F.cross_entropy(model(x), y)
        else:
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    ms = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t0) * 1000 / steps)
    med = statistics.median(ms)
    peak = torch.cuda.max_memory_allocated() / 2**20  # tensors in use at the peak (not the allocator's cache)
    print(f"BENCH torch-{mode} {name} {shape[0]} {med:.3f} {shape[0] * 1000 / med:.1f} (min {min(ms):.3f} max {max(ms):.3f} ms)"
          f" peak {peak:.0f} MiB", flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--nets", default="mlp,lenet,resnet50")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    print(f"PyTorch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}, "
          f"{torch.cuda.get_device_name(0)}", flush=True)
    for net in a.nets.split(","):
        if net == "mlp":
            bench("mlp", mlp(), (128, 784), a.steps, a.repeats, "fp32")
        elif net == "lenet":
            bench("lenet", lenet(), (128, 1, 28, 28), a.steps, a.repeats, "fp32")
        elif net == "resnet50":
            for mode in ("fp32", "tf32", "amp"):
                bench("resnet50", resnet50(), (64, 3, 224, 224), max(5, a.steps // 5), a.repeats, mode)


if __name__ == "__main__":
    main()
