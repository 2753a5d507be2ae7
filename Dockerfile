# GPU Concierge: the Slack bot (`concierge serve`) and the CLI, in one image.
#
#   docker build -t gpu-concierge .
#   docker run --env-file concierge.env gpu-concierge            # the Slack bot
#   docker run --env-file concierge.env gpu-concierge queue      # any CLI command
#
# The project is installed with the `postgres` extra (psycopg's binary wheel, so no libpq or
# compiler is needed) because a container's SQLite file dies with the container: production
# points CONCIERGE_DATABASE_URL at PostgreSQL (docker-compose.yml does).
#
# No Slurm inside. The Slurm backend calls the site's own sbatch/squeue/scontrol, which must
# match the controller's version and authenticate through the site's munge key, so they cannot be
# baked into a generic image. Either mount them (binaries, libslurm, slurm.conf and the munge
# socket) or build a derived image from the site's packages, e.g.:
#
#   FROM gpu-concierge
#   USER root
#   RUN apt-get update \
#       && apt-get install -y --no-install-recommends slurm-client munge \
#       && rm -rf /var/lib/apt/lists/*
#   USER concierge
#   # at run time: -v /etc/slurm:/etc/slurm:ro -v /run/munge:/run/munge
#   #              (munged runs on the host; the client only needs its socket)
#   #              and CONCIERGE_SLURM__BIN_DIR=/usr/bin if the binaries live elsewhere.
#
# The Debian package must be the controller's Slurm version (Debian 12 ships 22.05). Submitting
# for other people (`sbatch --uid`) needs root or SlurmUser; as the unprivileged `concierge` user
# the bot only submits for itself and says so.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed uid so volume ownership and Kubernetes' runAsUser agree with the image.
RUN groupadd --system --gid 10001 concierge \
    && useradd --system --uid 10001 --gid concierge --create-home --home-dir /home/concierge concierge

WORKDIR /app
# Metadata first, sources after: the dependency layer is rebuilt only when pyproject.toml changes.
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY backends ./backends
COPY policies ./policies
RUN pip install ".[postgres]"

USER concierge
WORKDIR /home/concierge

# Socket Mode needs no inbound port; HTTP mode listens on 3000 (CONCIERGE_SLACK__PORT).
EXPOSE 3000
ENTRYPOINT ["concierge"]
CMD ["serve"]
