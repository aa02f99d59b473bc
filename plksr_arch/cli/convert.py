"""`plksr convert IN OUT [--ema|--no-ema] [--half]`: PLKSR/RealPLKSR weights between .pth and .safetensors, with the
architecture and hyperparameters stored so that nothing needs guessing later."""

from __future__ import annotations

import argparse

from plksr_arch.cli import arch_opt

# What `plksr convert` loads; `cli.main` loads it first, holding Ctrl-C until it is loaded.
LIBRARIES = ("plksr_arch.weights.read",)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("convert", help="convert weights between .pth and .safetensors (any known layout in)")
    parser.add_argument("input", help="weights in any layout load_model reads (BasicSR, neosr, traiNNer-redux, raw)")
    parser.add_argument("output", help=".pth (BasicSR layout: {'params': ...}) or .safetensors")
    ema = parser.add_mutually_exclusive_group()
    ema.add_argument("--ema", dest="ema", action="store_true", default=None, help="take the EMA weights (required)")
    ema.add_argument("--no-ema", dest="ema", action="store_false", help="take the non-EMA weights ('params')")
    parser.add_argument("--half", action="store_true", help="store fp16 tensors (half the size)")
    arch_opt.add_argument(parser)


def run(args: argparse.Namespace) -> int:
    from plksr_arch.errors import UserError
    from plksr_arch.weights.read import ema_key, load_model
    from plksr_arch.weights.write import save_weights

    if not args.output.endswith((".pth", ".pt", ".safetensors")):
        raise UserError(f"{args.output}: the output must end in .pth, .pt or .safetensors")
    param_key = ema_key(args.input, args.ema) if args.ema is not None else None
    model = load_model(args.input, param_key=param_key, convert=False, **arch_opt.parse(args.arch_opt))
    save_weights(model, args.output, half=args.half)
    name = type(model).__name__
    settings = ", ".join(f"{k}={v}" for k, v in model.hyperparameters.items())
    print(f"{args.output}: {name}({settings}), {'fp16' if args.half else 'fp32'}, weights '{param_key or 'default'}'")
    return 0
