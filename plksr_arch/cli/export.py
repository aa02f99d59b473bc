"""`plksr export WEIGHTS -o model.onnx [--fp16] [--opset N] [--static HxW]` (checked with onnxruntime against
PyTorch) or `-o model.mlpackage --format coreml` (Core ML, the paper's edge target)."""

from __future__ import annotations

import argparse

from plksr_arch.cli import arch_opt

# What `plksr export` loads; `cli.main` loads it first, holding Ctrl-C until it is loaded.
LIBRARIES = ("plksr_arch.export.onnx_export",)


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("export", help="export weights to ONNX (verified with onnxruntime) or Core ML")
    parser.add_argument("weights", help="weights in any layout `plksr infer` reads")
    parser.add_argument("-o", "--output", required=True, help="model.onnx, or model.mlpackage with --format coreml")
    parser.add_argument("--format", choices=["onnx", "coreml"], help="default: from the output's extension")
    parser.add_argument("--fp16", action="store_true", help="ONNX: fp16 weights, input and output (Core ML: always)")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    parser.add_argument("--static", metavar="HxW", help="fixed LR input size instead of dynamic batch/height/width")
    arch_opt.add_argument(parser)


def _static(text: str | None) -> tuple[int, int] | None:
    from plksr_arch.errors import UserError

    if text is None:
        return None
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UserError(f"--static {text!r}: expected HxW, e.g. 180x320") from None
    if h < 1 or w < 1:
        raise UserError(f"--static {text!r}: sizes must be positive")
    return h, w


def run(args: argparse.Namespace) -> int:
    from plksr_arch.errors import UserError
    from plksr_arch.export.coreml_export import export_coreml
    from plksr_arch.export.onnx_export import check_route, export_onnx, size_of, verify_onnx
    from plksr_arch.weights.read import load_model

    fmt = args.format or ("coreml" if args.output.endswith((".mlpackage", ".mlmodel")) else "onnx")
    if fmt == "onnx" and not args.output.endswith(".onnx"):
        raise UserError(f"{args.output}: an ONNX export must end in .onnx (or pass --format coreml)")
    static = _static(args.static)
    options = arch_opt.parse(args.arch_opt)
    if fmt == "coreml":
        report = export_coreml(args.weights, args.output, static=static, arch_options=options)
        print(report)
        return 0
    model = load_model(args.weights, **options)
    check_route(model, "onnx", args.weights)
    export_onnx(model, args.output, fp16=args.fp16, opset=args.opset, static=static)
    checks = verify_onnx(model, args.output, fp16=args.fp16, static=static)
    shapes = "static " + "x".join(map(str, static)) if static else "dynamic batch/height/width"
    print(
        f"{args.output}: {type(model).__name__}, {'fp16' if args.fp16 else 'fp32'}, opset {args.opset}, {shapes}, "
        f"{size_of(args.output)}"
    )
    for check in checks:
        print(f"onnxruntime vs PyTorch fp32, {check}")
    return 0
