"""Regenerates the gRPC stubs of the Python SDK from `proto/`.

    python generate.py           # writes src/paved/<service>/v1/*_pb2*.py(i)
    python generate.py --check   # regenerates elsewhere, fails on any difference

The stubs are committed, so that `pip install` needs no compiler; this is
how they are made, with grpcio-tools at the version requirements-dev.txt
pins (its bundled protoc decides the output), and CI runs `--check`.
"""

import filecmp
import pathlib
import shutil
import sys
import tempfile

from grpc_tools import protoc

HERE = pathlib.Path(__file__).resolve().parent
PROTO = HERE.parent.parent / "proto"
SRC = HERE / "src"
# The generated packages, beside the hand-written modules of `paved`.
SERVICES = sorted(p.name for p in (PROTO / "paved").iterdir() if p.is_dir())


def generate(out: pathlib.Path) -> None:
    files = sorted(str(p.relative_to(PROTO)) for p in PROTO.rglob("*.proto"))
    include = pathlib.Path(protoc.__file__).parent / "_proto"
    args = ["protoc", f"-I{PROTO}", f"-I{include}", f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    # Regular packages, so that packaging finds them.
    for service in SERVICES:
        for directory in [out / "paved" / service, *sorted((out / "paved" / service).rglob("*/"))]:
            if directory.is_dir():
                (directory / "__init__.py").touch()


def generated(root: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p.relative_to(root) for service in SERVICES for p in (root / "paved" / service).rglob("*") if p.is_file())


def main() -> None:
    if sys.argv[1:] == ["--check"]:
        with tempfile.TemporaryDirectory() as tmp:
            fresh = pathlib.Path(tmp)
            generate(fresh)
            want, have = generated(fresh), generated(SRC)
            differ = sorted(set(want) ^ set(have)) + [p for p in want if p in have and not filecmp.cmp(fresh / p, SRC / p, shallow=False)]
            if differ:
                sys.exit("generated stubs differ from proto/ (run sdk/python/generate.py):\n  " + "\n  ".join(map(str, differ)))
        print(f"the Python stubs match proto/ ({len(want)} files)")
        return
    for service in SERVICES:
        shutil.rmtree(SRC / "paved" / service, ignore_errors=True)
    generate(SRC)
    print(f"generated {len(generated(SRC))} files under {SRC / 'paved'}")


if __name__ == "__main__":
    main()
