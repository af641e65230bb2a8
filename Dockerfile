FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY requirements.lock .
RUN pip install --no-cache-dir -r requirements.lock
COPY . .
# The translations: .mo files are build output (Babel is in the lock), not in the tree.
RUN for po in */locale/*/LC_MESSAGES/django.po; do \
      python -m babel.messages.frontend --quiet compile -D django -i "$po" -o "${po%.po}.mo"; \
    done
RUN SECRET_KEY=build DJANGO_SETTINGS_MODULE=config.settings.local python manage.py collectstatic --noinput
USER nobody
