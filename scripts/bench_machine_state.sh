# One core's RSA-2048 signing speed, ours and OpenSSL's (sourced, not run).
# This VM runs in fast and slow periods: these lines say which period a
# benchmark ran in, so that only figures of the same invocation are
# compared. Run from the repository's root, the release binaries built.
#   machine_state BIN WORK   (WORK: a folder for a throwaway key)
machine_state() {
    local bin=$1 work=$2
    echo "== machine state: RSA-2048 signing on one core"
    "$bin" keygen "$work/speed-key" --quiet
    target/release/examples/sign_speed "$work/speed-key/client_private.pem" 2000
    if command -v openssl > /dev/null; then
        openssl speed -seconds 3 rsa2048 2> /dev/null |
            awk '/^rsa 2048/ { printf "openssl:   %.2f ms per signature on one core\n", $4 * 1000 }'
    fi
}
