# Sourced by the bench scripts: a private one-worker nginx answering `return 200` on loopback.
#   nginx_setup WORK   writes WORK/nginx/nginx.conf on a free port; sets $port and $url
#   start_nginx [PREFIX...]   starts it (under PREFIX, e.g. `taskset -c 0`), waits until it listens
#   stop_nginx         ends the one started (by its PID)
nginx_bin="$(command -v nginx || echo /usr/sbin/nginx)"
nginx_pid=""
nginx_setup() {
  nginx_work="$1"
  port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
  url="http://127.0.0.1:$port/"
  mkdir -p "$nginx_work/nginx"
  cat >"$nginx_work/nginx/nginx.conf" <<NGINX
daemon off;
master_process off;
worker_processes 1;
pid $nginx_work/nginx/nginx.pid;
error_log $nginx_work/nginx/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $nginx_work/nginx/body;
  proxy_temp_path $nginx_work/nginx/proxy;
  fastcgi_temp_path $nginx_work/nginx/fastcgi;
  uwsgi_temp_path $nginx_work/nginx/uwsgi;
  scgi_temp_path $nginx_work/nginx/scgi;
  keepalive_requests 1000000;
  server {
    listen 127.0.0.1:$port;
    location / { return 200 "ok\n"; }
  }
}
NGINX
}
start_nginx() {
  "$@" "$nginx_bin" -p "$nginx_work/nginx" -c "$nginx_work/nginx/nginx.conf" &
  nginx_pid=$!
  for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && return
    sleep 0.1
  done
}
stop_nginx() {
  if [[ -n "$nginx_pid" ]]; then
    kill "$nginx_pid" 2>/dev/null || true
    wait "$nginx_pid" 2>/dev/null || true
    nginx_pid=""
  fi
}
