# Loopback port helpers for the bench scripts (sourced, not run).

# A free loopback port below the ephemeral range, so the load generator's
# many client sockets never take it.
free_port() {
    python3 -c 'import random, socket
while True:
    p = random.randrange(20000, 32000); s = socket.socket()
    try: s.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass
    finally: s.close()'
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Wait up to 20 s for something to listen on a port.
wait_port() {
    local i
    for i in $(seq 1 200); do port_open "$1" && return 0; sleep 0.1; done
    echo "${0##*/}: nothing listens on $1" >&2; return 1
}
