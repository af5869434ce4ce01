# One image for every SWOOSH process: `docker run swoosh worker`, `swoosh api`, `swoosh sim`, …
# (the entry point is the `swoosh` command; the first argument picks the subcommand).
# Multi-stage: the build stage makes a virtual environment with SWOOSH and its dependencies; the
# runtime stage copies only that environment and runs as an unprivileged user.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/swoosh
COPY pyproject.toml README.md ./
COPY workflows ./workflows
COPY guards ./guards
COPY activities ./activities
COPY api ./api
COPY worker ./worker
COPY chaos ./chaos
RUN /opt/swoosh/bin/pip install --upgrade pip && /opt/swoosh/bin/pip install .

FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/swoosh/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    SWOOSH_DATA_DIR=/var/lib/swoosh
RUN groupadd --system --gid 10001 swoosh \
    && useradd --system --uid 10001 --gid swoosh --home-dir /var/lib/swoosh --shell /usr/sbin/nologin swoosh \
    && mkdir -p /var/lib/swoosh && chown swoosh:swoosh /var/lib/swoosh
COPY --from=build /opt/swoosh /opt/swoosh
USER 10001:10001
WORKDIR /var/lib/swoosh
# Worker metrics and health ports, API port, codec server port.
EXPOSE 9464 9465 8080 8234
ENTRYPOINT ["swoosh"]
CMD ["worker", "--metrics-bind", "0.0.0.0:9464"]
