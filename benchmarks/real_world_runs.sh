#!/usr/bin/env bash
# The real-world runs behind the issue-12 note and docs/real-world.md, on a CPU: the shipped x4 RealPLKSR
# option files (RealPLKSR as shipped: dim 64, 28 blocks) trained on scikit-image's photos, shrunk with --force_yml
# (batch 2, GT patches 160 -> 128, pool of 8, EMA 0.9 so that 100 iterations mean something); the perceptual loss
# uses a randomly initialised VGG19 (ImageNet's weights cannot be downloaded offline). Then the GAN stage under
# torchrun (two CPU processes) and PLKSR-tiny under a two-node torchrun (one process per node, localhost).
#   bash benchmarks/real_world_runs.sh WORKDIR      (with plksr-arch installed; about 12 minutes on 2 cores)
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$1" && cd "$1"
lscpu | grep -o -E "avx2|fma|avx512[a-z_0-9]*|amx[a-z_0-9]*" | sort -u | tr '\n' ' ' && echo "(CPU flags)"
python - <<'PY'
import os, torch
import plksr_arch, basicsr  # noqa: F401
from torchvision.models import vgg19
from plksr_arch.data.photos import TEST_PHOTOS, TRAIN_PHOTOS, build_dataset, load_photo
from plksr_arch.data.preparation import write_png
for folder, names in (("train_photos", TRAIN_PHOTOS), ("heldout_photos", TEST_PHOTOS)):
    os.makedirs(folder, exist_ok=True)
    for name in names:
        write_png(f"{folder}/{name}.png", load_photo(name), compression=1)
build_dataset("bicubic", 4)
g = torch.Generator().manual_seed(0)
state = {}
for key, value in vgg19().state_dict().items():  # random, small on disk: one value per (out, in) conv pair
    if value.dim() == 4:
        std = (2 / value.shape[1]) ** 0.5 / 9
        state[key] = (torch.randn(value.shape[0], value.shape[1], 1, 1, generator=g) * std).expand(value.shape)
    else:
        state[key] = torch.zeros([1] * value.dim()).expand(value.shape)
torch.save(state, "vgg19_random.pth")
PY
plksr prepare train_photos --real --out datasets/DF2K --name DF2K
plksr prepare heldout_photos --degraded-val --scales 4 --size 256 --out datasets/DIV2K --name DIV2K_valid
net="$repo/options/train/train_RealPLKSR_RealESRNet_x4.yml"
gan="$repo/options/train/train_RealPLKSR_RealESRGAN_x4.yml"
small="num_gpu=0 datasets:train:num_worker_per_gpu=0 datasets:train:crop_pad_size=160 datasets:train:gt_size=128
  gt_size=128 logger:use_tb_logger=false train:ema_decay=0.9"
vgg="train:perceptual_opt:vgg_weights=vgg19_random.pth"
time plksr train -opt "$net" --force_yml $small datasets:train:batch_size_per_gpu=2 queue_size=8 \
  train:total_iter=100 val:val_freq=50 logger:print_freq=10 logger:save_checkpoint_freq=50 2> stage1.log
time plksr train -opt "$gan" --force_yml $small $vgg datasets:train:batch_size_per_gpu=2 queue_size=8 \
  train:total_iter=30 val:val_freq=15 logger:print_freq=5 logger:save_checkpoint_freq=15 2> stage2.log
time torchrun --nproc_per_node 2 --master_port 29633 -m plksr_arch.train -opt "$gan" --launcher pytorch \
  --force_yml $small $vgg name=ddp_gan datasets:train:batch_size_per_gpu=1 queue_size=4 train:total_iter=10 \
  val:val_freq=10 logger:print_freq=2 logger:save_checkpoint_freq=5 2> ddp_gan.log
tiny="$repo/options/train/train_PLKSR-tiny_DIV2K_x4.yml"
nodes="name=two_nodes num_gpu=0 datasets:train:dataroot_gt=bicubic/train/GT datasets:train:dataroot_lq=bicubic/train/LRx4
  datasets:train:io_backend:type=disk datasets:train:batch_size_per_gpu=4 datasets:train:num_worker_per_gpu=0
  datasets:train:gt_size=192 datasets:val_1:dataroot_gt=bicubic/test/GT datasets:val_1:dataroot_lq=bicubic/test/LRx4
  train:total_iter=20 val:val_freq=20 logger:print_freq=5 logger:save_checkpoint_freq=10 logger:use_tb_logger=false"
pids=()
for rank in 0 1; do  # on two machines: the same command on each, --master_addr = the first machine's address
  torchrun --nnodes 2 --node_rank $rank --nproc_per_node 1 --master_addr 127.0.0.1 --master_port 29622 \
    -m plksr_arch.train -opt "$tiny" --launcher pytorch --force_yml $nodes > node$rank.log 2>&1 &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
grep -h -E "iter:|# psnr" stage1.log stage2.log ddp_gan.log node0.log
