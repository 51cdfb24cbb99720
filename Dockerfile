# A small image to run kptrace on a node with `kubectl debug` (docs/install.md).
#
#   docker build -t kptrace .
#   kubectl debug node/NODE -it --profile=sysadmin --image=kptrace \
#     -- sh -c 'chroot /host iptables-save | kptrace svc default/nginx'
#
# Alpine's Rust builds for musl, so the binary is static; busybox gives the shell and `chroot` that
# reach the node's own iptables-save under /host.
FROM rust:1.85-alpine AS build
RUN apk add --no-cache musl-dev
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY benches benches
COPY examples examples
RUN cargo build --release --locked --bin kptrace \
 && install -m 0755 target/release/kptrace /kptrace

FROM busybox:1.37-musl
COPY --from=build /kptrace /usr/local/bin/kptrace
ENTRYPOINT ["kptrace"]
CMD ["--help"]
