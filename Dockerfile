# aidmesh: a slim, non-root image. Set DATABASE_URL and REDIS_URL for production.
# tests/packaging/test_installed_wheel.py builds and installs the wheel from the same
# files this file copies, so keep the COPY lines the only way sources get in.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY service ./service
COPY realtime ./realtime
COPY playbooks ./playbooks
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --create-home --uid 10001 aidmesh
COPY --from=build /wheels /wheels
# Dependencies at the versions `make lock` wrote, the ones the tests ran against.
COPY constraints.txt /wheels/constraints.txt
RUN pip install --no-cache-dir -c /wheels/constraints.txt /wheels/aidmesh-*.whl && rm -rf /wheels
USER aidmesh
WORKDIR /home/aidmesh
ENV AIDMESH_HOST=0.0.0.0 AIDMESH_PORT=8000 PYTHONUNBUFFERED=1
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"
CMD ["aidmesh", "serve"]
