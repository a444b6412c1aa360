# One image for every role: `smq api`, `smq relay`, `smq projector`, `smq saga`, `smq serve`.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY command_api command_api
COPY domain domain
COPY infra infra
COPY projections projections
COPY workers workers
COPY service service
COPY client client
COPY bench bench
RUN pip install --no-cache-dir . && useradd --system --uid 10001 smq
USER smq
ENV SMQ_HTTP_HOST=0.0.0.0 SMQ_HTTP_PORT=9000 SMQ_DATA_DIR=/var/lib/smq
EXPOSE 9000
ENTRYPOINT ["smq"]
CMD ["serve"]
