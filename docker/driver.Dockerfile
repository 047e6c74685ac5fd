# The medshard command line (the build's driver: lists, plans, submits, writes the
# manifest). It runs no shard itself when a cluster runner is named.
#
#   pip wheel --no-deps -w dist .                      # from the repository root
#   docker build -f docker/driver.Dockerfile -t medshard-driver:0.1.0 .
#   docker run --rm -e AWS_ACCESS_KEY_ID -e AWS_SECRET_ACCESS_KEY medshard-driver:0.1.0 \
#       build ptb-xl --data-root s3://bucket/raw --out s3://bucket/builds/b1 -- --runner=...
#
# Untested here: this machine has no registry access to build images.
FROM python:3.11-slim

ARG BEAM_VERSION=2.77.0
ARG MEDSHARD_VERSION=0.1.0

COPY dist/medshard-${MEDSHARD_VERSION}-py3-none-any.whl /tmp/wheels/

RUN pip install --no-cache-dir \
        "/tmp/wheels/medshard-${MEDSHARD_VERSION}-py3-none-any.whl[etl]" \
        "apache-beam[gcp,aws,azure]==${BEAM_VERSION}" \
        "s3fs>=2023.6" "gcsfs>=2023.6" "adlfs>=2023.6" \
    && rm -rf /tmp/wheels

RUN useradd --create-home --uid 10001 medshard
USER 10001
WORKDIR /home/medshard

ENTRYPOINT ["medshard"]
CMD ["--help"]
