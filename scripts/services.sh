#!/usr/bin/env bash
# Start the services the tests use (Redis 6379, PostgreSQL 5432 on 127.0.0.1) when they are down.
set -euo pipefail

redis_up() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }
postgres_up() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }

if ! redis_up; then
  echo "starting redis"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
if ! postgres_up && command -v pg_ctlcluster >/dev/null; then
  echo "starting postgresql"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
for _ in $(seq 1 50); do
  redis_up && break
  sleep 0.2
done
redis_up || { echo "redis did not start" >&2; exit 1; }
echo "services: redis up$(postgres_up && echo ', postgresql up')"
