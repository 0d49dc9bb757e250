#!/usr/bin/env bash
# Runs the commands of docs/deploy.md on this machine, in order, in a scratch directory:
# PostgreSQL role and database, the URL in a root-only environment file, server init and a user,
# the systemd unit (verified with systemd-analyze; its ExecStart line is what starts the three
# workers here, since a build machine has no systemd) and their connection budget, the ASGI
# factory under uvicorn with its budget from the environment, nginx with the doc's configuration
# in front of the workers (a self-signed certificate stands in for the real one), the checks
# through the proxy (TLS, sign-in, request id, X-Forwarded-For not spoofable, /metrics not
# exposed), each
# worker's /healthz and /metrics, a backup while serving, a restore into a new database, and the
# upgrade procedure. Everything is removed at the end. Needs: PostgreSQL reachable as a
# superuser (PGADMIN), nginx, openssl, curl, systemd-analyze.
#
#   scripts/check_deploy.sh        (AGENTDESK=path/to/agentdesk to test another install)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
AGENTDESK=${AGENTDESK:-$ROOT/.venv/bin/agentdesk}
read -r -a PGADMIN <<< "${PGADMIN:--h 127.0.0.1 -U postgres}"
WORK=$(mktemp -d /tmp/agentdesk-deploy.XXXXXX)
ETC=$WORK/etc/agentdesk
BACKUPS=$WORK/backups
ROLE=agentdesk_deploy_$$
DB=agentdesk_deploy_$$
PORTS=(18761 18762 18763)
PROXY_PORT=18443
HOSTNAME_=agentdesk.example.com
PIDS=()

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

cleanup() {
    set +e
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null
    wait 2>/dev/null
    dropdb "${PGADMIN[@]}" --if-exists --force "$DB" 2>/dev/null
    dropdb "${PGADMIN[@]}" --if-exists --force "${DB}_restored" 2>/dev/null
    dropuser "${PGADMIN[@]}" --if-exists "$ROLE" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$ETC" "$BACKUPS"

# The doc's files are the ones tested: docs/deploy.md quotes each of them verbatim.
python3 - <<'EOF'
from pathlib import Path
doc = Path("docs/deploy.md").read_text()
for name in ("agentdesk@.service", "nginx.conf", "prometheus.yml"):
    body = Path("docs/deploy", name).read_text()
    assert body.strip() in doc, f"docs/deploy.md does not quote docs/deploy/{name} verbatim"
EOF

step "1. Database and role"
PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
createuser "${PGADMIN[@]}" --no-superuser --no-createdb --no-createrole "$ROLE"
# printf is a shell builtin: the password reaches psql on stdin, never on a command line.
printf "ALTER ROLE %s PASSWORD '%s';\n" "$ROLE" "$PASSWORD" \
    | psql "${PGADMIN[@]}" -q -v ON_ERROR_STOP=1 postgres
createdb "${PGADMIN[@]}" --owner "$ROLE" "$DB"

step "2. The connection URL, in a file only the service reads"
(umask 077 && printf 'AGENTDESK_DATABASE_URL=postgresql+psycopg://%s:%s@127.0.0.1:5432/%s\n' \
    "$ROLE" "$PASSWORD" "$DB" > "$ETC/agentdesk.env")
[ "$(stat -c %a "$ETC/agentdesk.env")" = 600 ] || fail "the environment file is not mode 600"

step "3. Schema, team and the first user"
set -a; . "$ETC/agentdesk.env"; set +a
"$AGENTDESK" server init --team-name "Acme Support" --timezone America/Chicago
LEAD_PASSWORD=$(python3 -c 'import secrets; print(secrets.token_urlsafe(16))')
printf '%s\n' "$LEAD_PASSWORD" | "$AGENTDESK" user add dana --role lead \
    --display-name "Dana Whitfield" --password-stdin

step "4. The systemd unit, and three workers started with its ExecStart"
UNIT=$WORK/agentdesk@.service
sed -e "s|/opt/agentdesk/bin/agentdesk|$AGENTDESK|" -e "s|/etc/agentdesk|$ETC|" \
    -e "s|^User=agentdesk|User=root|" -e "s|^Group=agentdesk|Group=root|" \
    docs/deploy/agentdesk@.service > "$UNIT"
cp "$UNIT" "$WORK/agentdesk@${PORTS[0]}.service"
systemd-analyze verify --man=no "$WORK/agentdesk@${PORTS[0]}.service"
EXEC=$(sed -n 's/^ExecStart=//p' "$UNIT")
for port in "${PORTS[@]}"; do
    # shellcheck disable=SC2086 # the unit's command line, split as systemd splits it
    env -i PATH="$PATH" AGENTDESK_DATABASE_URL="$AGENTDESK_DATABASE_URL" \
        ${EXEC//%i/$port} 2> "$WORK/worker-$port.log" &
    PIDS+=("$!")
done
for port in "${PORTS[@]}"; do
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$port/healthz" > /dev/null 2>&1 && break
        sleep 0.2
    done
    curl -fsS "http://127.0.0.1:$port/healthz" | grep -q '"status":"ok"' \
        || fail "worker $port is not healthy: $(cat "$WORK/worker-$port.log")"
done
echo "3 workers healthy"
# Section 2: the unit states each worker's connection budget, and each worker took it.
BUDGET=$(sed -n 's/.*--max-db-connections \([0-9][0-9]*\).*/\1/p' <<< "$EXEC")
[ -n "$BUDGET" ] || fail "the unit's ExecStart states no --max-db-connections"
budget_of() { curl -fsS "http://127.0.0.1:$1/metrics" | sed -n 's/^agentdesk_db_connections_budget //p'; }
for port in "${PORTS[@]}"; do
    [ "$(budget_of "$port")" = "$BUDGET.0" ] \
        || fail "worker $port does not report the unit's budget of $BUDGET connections"
done
echo "each worker's connection budget is the unit's: $BUDGET"
# Section 2's look at the connections: three workers stay within 3 x the budget.
psql "${PGADMIN[@]}" -c "SELECT datname, count(*) FROM pg_stat_activity GROUP BY 1"
USED=$(psql "${PGADMIN[@]}" -Atc "SELECT count(*) FROM pg_stat_activity WHERE datname = '$DB'")
[ "$USED" -le $((3 * BUDGET)) ] || fail "the 3 workers hold $USED connections, more than 3 x $BUDGET"
if ps -eo args | grep -F -- "$PASSWORD" | grep -v grep; then
    fail "the database password is visible in the process list"
fi
echo "the database password is in no process's command line"

step "4b. Another ASGI server: the factory, its budget from the environment"
# Section 5's uvicorn command, on a port of its own, from the same environment file. A budget
# it cannot use stops it before it serves; the one the doc gives reaches every worker.
UVICORN=$(dirname "$AGENTDESK")/uvicorn
ASGI_PORT=18764
if env -i PATH="$PATH" AGENTDESK_DATABASE_URL="$AGENTDESK_DATABASE_URL" \
    AGENTDESK_MAX_DB_CONNECTIONS=1 "$UVICORN" --factory agentdesk.server.asgi:app_from_env \
    --host 127.0.0.1 --port "$ASGI_PORT" > "$WORK/asgi-refused.log" 2>&1; then
    fail "uvicorn started with AGENTDESK_MAX_DB_CONNECTIONS=1"
fi
grep -q "AGENTDESK_MAX_DB_CONNECTIONS must be a whole number from 2" "$WORK/asgi-refused.log" \
    || fail "the refusal does not name the variable: $(cat "$WORK/asgi-refused.log")"
echo "AGENTDESK_MAX_DB_CONNECTIONS=1 refused, naming the variable"
(
    set -a; . "$ETC/agentdesk.env"; set +a
    exec env -i PATH="$PATH" AGENTDESK_DATABASE_URL="$AGENTDESK_DATABASE_URL" \
        AGENTDESK_MAX_DB_CONNECTIONS=20 "$UVICORN" --factory \
        agentdesk.server.asgi:app_from_env --host 127.0.0.1 --port "$ASGI_PORT" --workers 3 \
        --forwarded-allow-ips 127.0.0.1
) > "$WORK/asgi.log" 2>&1 &
ASGI_PID=$!
PIDS+=("$ASGI_PID")
for _ in $(seq 150); do
    curl -fsS "http://127.0.0.1:$ASGI_PORT/healthz" > /dev/null 2>&1 && break
    sleep 0.2
done
# The three workers share the port; a few scrapes reach more than one of them.
for _ in $(seq 6); do
    [ "$(budget_of "$ASGI_PORT")" = "20.0" ] \
        || fail "a uvicorn worker does not report the budget of 20: $(cat "$WORK/asgi.log")"
done
kill -TERM "$ASGI_PID"
wait "$ASGI_PID" || fail "uvicorn did not stop cleanly: $(cat "$WORK/asgi.log")"
unset 'PIDS[-1]'
echo "uvicorn --workers 3 served with a budget of 20 connections per worker, and stopped"

step "5. nginx with TLS in front of them"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$HOSTNAME_" \
    -addext "subjectAltName=DNS:$HOSTNAME_" \
    -keyout "$WORK/privkey.pem" -out "$WORK/fullchain.pem" 2> /dev/null
sed -e "s|/etc/ssl/agentdesk/|$WORK/|" -e "s|listen 443 ssl;|listen $PROXY_PORT ssl;|" \
    -e "s|127.0.0.1:8761|127.0.0.1:${PORTS[0]}|" -e "s|127.0.0.1:8762|127.0.0.1:${PORTS[1]}|" \
    -e "s|127.0.0.1:8763|127.0.0.1:${PORTS[2]}|" docs/deploy/nginx.conf > "$WORK/agentdesk.conf"
cat > "$WORK/nginx.conf" <<EOF
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events {}
http {
    access_log $WORK/nginx-access.log;
    client_body_temp_path $WORK/nginx-body;
    proxy_temp_path $WORK/nginx-proxy;
    include $WORK/agentdesk.conf;
}
EOF
nginx -t -c "$WORK/nginx.conf" -p "$WORK" 2>&1 | grep -v "^$"
nginx -c "$WORK/nginx.conf" -p "$WORK"
BASE="https://$HOSTNAME_:$PROXY_PORT"
CURL=(curl -fsS --cacert "$WORK/fullchain.pem" --resolve "$HOSTNAME_:$PROXY_PORT:127.0.0.1")
for _ in $(seq 50); do "${CURL[@]}" "$BASE/healthz" > /dev/null 2>&1 && break; sleep 0.1; done
"${CURL[@]}" "$BASE/healthz"; echo
TOKEN=$(printf '{"username": "dana", "password": "%s"}' "$LEAD_PASSWORD" \
    | "${CURL[@]}" -H 'Content-Type: application/json' --data-binary @- "$BASE/api/v1/login" \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
"${CURL[@]}" -H "Authorization: Bearer $TOKEN" "$BASE/api/v1/me" | grep -q '"username":"dana"' \
    || fail "sign-in through the proxy"
echo "signed in through the proxy"
RID=$("${CURL[@]}" -o /dev/null -D - -H "X-Forwarded-For: 203.0.113.9" "$BASE/healthz" \
    | tr -d '\r' | sed -n 's/^x-request-id: //Ip')
[ -n "$RID" ] || fail "no X-Request-ID in the response"
sleep 0.5
LINE=$(cat "$WORK"/worker-*.log | grep -F "\"request_id\": \"$RID\"" || true)
[ -n "$LINE" ] || fail "no worker logged request $RID"
echo "$LINE"
echo "$LINE" | grep -q '"client": "127.0.0.1"' || fail "a made-up X-Forwarded-For was trusted"
echo "request $RID: logged by a worker with the client address nginx saw, not the made-up one"
CODE=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$WORK/fullchain.pem" \
    --resolve "$HOSTNAME_:$PROXY_PORT:127.0.0.1" "$BASE/metrics")
[ "$CODE" = 404 ] || fail "/metrics is reachable through the proxy ($CODE)"
echo "/metrics is not served through the proxy"

step "6. Health and metrics of each worker (what Prometheus scrapes)"
for port in "${PORTS[@]}"; do
    curl -fsS "http://127.0.0.1:$port/metrics" | grep -c '^agentdesk_' \
        | sed "s/^/worker $port: agentdesk_ samples: /"
done

step "7. Backup while serving, and a restore drill"
"$AGENTDESK" server backup --out "$BACKUPS/agentdesk-$(date +%F).sqlite3"
createdb "${PGADMIN[@]}" --owner "$ROLE" "${DB}_restored"
AGENTDESK_DATABASE_URL="${AGENTDESK_DATABASE_URL%/*}/${DB}_restored" \
    "$AGENTDESK" server restore "$BACKUPS/agentdesk-$(date +%F).sqlite3"

step "8. Upgrade: stop the workers, then upgrade with a backup first"
for pid in "${PIDS[@]}"; do kill -TERM "$pid"; done
for pid in "${PIDS[@]}"; do wait "$pid" || fail "a worker did not stop cleanly"; done
PIDS=()
"$AGENTDESK" server init --backup-first "$BACKUPS"
STOPPED=$(cat "$WORK"/worker-*.log | grep -c '"message": "AgentDesk server stopped"')
[ "$STOPPED" = 3 ] || fail "$STOPPED of 3 workers logged a clean stop"
echo "3 workers stopped cleanly"

step "9. Logs are JSON lines with no password or token"
python3 - "$WORK" "$PASSWORD" "$LEAD_PASSWORD" "$TOKEN" <<'EOF'
import json, pathlib, sys
work, *secrets = sys.argv[1:]
lines = 0
for log in pathlib.Path(work).glob("worker-*.log"):
    text = log.read_text()
    for secret in secrets:
        assert secret not in text, f"a secret is in {log.name}"
    for line in text.splitlines():
        json.loads(line)
        lines += 1
print(f"{lines} log lines, all JSON, no secret among them")
EOF

printf '\nOK: docs/deploy.md ran end to end on this machine.\n'
