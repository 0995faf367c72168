FROM python:3.11-slim
# Production settings: DEBUG off; SECRET_KEY, FIELD_ENCRYPTION_KEYS and ALLOWED_HOSTS come from the environment
# at run time (start-up refuses the development values published in the repository).
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DEBUG=false
WORKDIR /app
# Node.js only to install the front-end libraries (htmx, Chart.js) from the npm registry.
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends nodejs npm && rm -rf /var/lib/apt/lists/*
COPY requirements/ requirements/
RUN pip install --no-cache-dir -r requirements/base.txt
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error
COPY . .
RUN useradd --create-home app && mkdir -p var/static && chown -R app var
USER app
EXPOSE 8000 8001
CMD ["gunicorn", "config.asgi:application", "-k", "uvicorn.workers.UvicornWorker", "--bind", "0.0.0.0:8000"]
