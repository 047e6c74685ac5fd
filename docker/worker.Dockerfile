# Beam SDK worker with medshard: the image Beam's portable runners (Flink, Spark, the
# job service in compose.yaml) and Dataflow start for every SDK harness.
#
#   pip wheel --no-deps -w dist .                      # from the repository root
#   docker build -f docker/worker.Dockerfile -t medshard-worker:0.1.0 .
#
# The base image's Beam must be the Beam that submits the job (the driver's): 2.77.0.
# Untested here: this machine has no registry access to build images.
ARG BEAM_VERSION=2.77.0
FROM apache/beam_python3.11_sdk:${BEAM_VERSION}

ARG BEAM_VERSION
ARG MEDSHARD_VERSION=0.1.0

COPY dist/medshard-${MEDSHARD_VERSION}-py3-none-any.whl /tmp/wheels/

# the wheel pinned by its file name; Beam held at the image's version so the harness
# and the SDK agree
RUN pip install --no-cache-dir \
        "/tmp/wheels/medshard-${MEDSHARD_VERSION}-py3-none-any.whl[etl]" \
        "apache-beam[gcp,aws,azure]==${BEAM_VERSION}" \
        "s3fs>=2023.6" "gcsfs>=2023.6" "adlfs>=2023.6" \
    && rm -rf /tmp/wheels \
    && python -c "import medshard, apache_beam; print(medshard.__version__, apache_beam.__version__)"

# the SDK image's own entry point (/opt/apache/beam/boot) stays: runners start it with
# their --id/--*_endpoint flags, or with --worker_pool for an external worker pool
