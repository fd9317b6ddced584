# syntax=docker/dockerfile:1
# tello-mcp: every server of the suite in one image; the subcommand picks what runs.
#
#   docker build -t tello-mcp .
#   docker run --rm -p 8000:8000 tello-mcp serve --sim        # the default command: all servers, simulated drone
#   docker run --rm -p 8000:8000 tello-mcp serve everything   # one server: drone, everything, fetch
#   docker run --rm --network host tello-mcp serve drone      # a real drone: host networking
#   docker run --rm --network host tello-mcp sim --host 0.0.0.0  # the UDP simulator alone
#
# The drone speaks UDP and sends its state packets (8890) and video (11111) to fixed ports of
# the address that commanded it, which NAT cannot forward: to fly a real drone (or to reach the
# `tello-mcp sim` simulator from outside) run with `--network host` (Kubernetes:
# `hostNetwork: true`). The HTTP server listens on 0.0.0.0:8000 (TELLO_MCP_HOST, TELLO_MCP_PORT;
# change the port with TELLO_MCP_PORT so the healthcheck follows it).
#
# The install steps are those of tests/packaging/test_wheel.py (`pip wheel --no-deps`, then
# `pip --python VENV install --no-deps` of that wheel into a fresh venv; PIP_PYTHON is
# `--python`, spelled so hadolint's pip rules see the command), which is how the test suite
# stands in for this image; tests/container/ lints this file and checks that it does.

FROM python:3.11-slim AS build
WORKDIR /src
# .dockerignore admits only what the wheel is built from.
COPY . .
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /dist . \
    && python -m pip wheel --no-cache-dir --wheel-dir /wheels /dist/tello_mcp-*.whl

FROM python:3.11-slim
ENV PATH=/opt/tello-mcp/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TELLO_MCP_HOST=0.0.0.0 \
    TELLO_MCP_PORT=8000
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv --without-pip /opt/tello-mcp \
    && PIP_PYTHON=/opt/tello-mcp/bin/python python -m pip install --no-cache-dir --no-index --no-deps /wheels/*.whl \
    && PIP_PYTHON=/opt/tello-mcp/bin/python python -m pip check \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /home/tello tello
USER 10001
WORKDIR /home/tello
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('TELLO_MCP_PORT', '8000') + '/healthz', timeout=4)"]
ENTRYPOINT ["tello-mcp"]
# Run bare, the image serves the demo: every server, the drone on the embedded simulator. A real
# drone needs `serve drone` with --network host (and TELLO_MCP_DRONE_HOST if not 192.168.10.1).
CMD ["serve", "--sim"]
