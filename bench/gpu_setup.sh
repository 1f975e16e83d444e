# Sourced by the bench/gpu_*.sh drivers that run bkdsl itself on a lent GPU machine: carried wheels
# (.whl/, the dependencies the machine's image lacks) go to /tmp/site, bkdsl is installed editable
# without dependencies, and $OUT is created. NVLink multicast stays off for NCCL. The wheels are fetched
# beforehand where pip works: pip download --no-deps --only-binary=:all: --python-version 3.12
# --platform manylinux2014_x86_64 -d .whl lark pint flexcache flexparser platformdirs geoopt pydantic
# pydantic-core annotated-types typing-inspection typing-extensions (versions as in pyproject's ranges).
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS=8 NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1
unset TRITON_INTERPRET
OUT=${OUT:-bench/results}
mkdir -p "$OUT"
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
fi
python3 -m pip install -q --no-index --no-deps --no-build-isolation -e . >/dev/null
