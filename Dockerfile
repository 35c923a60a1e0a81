# The image behind docker-compose.yml's web, worker and beat services.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH="/app/.venv/bin:$PATH"

WORKDIR /app

# The same uv the Makefile pins; the dependencies exactly as uv.lock has them, without dev tools.
RUN pip install --no-cache-dir "uv==0.13.8"
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-dev --no-install-project

COPY . .

RUN useradd --create-home --uid 10001 nps \
    && mkdir -p /app/staticfiles /app/var /data/media \
    && chown -R nps:nps /app/staticfiles /app/var /data/media
USER nps

# Static files with production's hashed-name manifest. Settings need production values to load;
# these placeholders only exist during this step (nothing is contacted). The web service
# collects again at start, so a changed setting is picked up without a rebuild.
RUN NPS_MODE=production SECRET_KEY=collectstatic-only ALLOWED_HOSTS=localhost \
    SITE_URL=http://localhost DATABASE_URL=postgres://build@localhost/build \
    REDIS_URL=redis://localhost:6379/0 CELERY_BROKER_URL=redis://localhost:6379/1 \
    EMAIL_PROVIDER=smtp \
    python manage.py collectstatic --no-input

EXPOSE 8000
CMD ["gunicorn", "nps_saas.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
