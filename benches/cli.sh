#!/usr/bin/env bash
# End-to-end timings of the kptrace CLI on generated dumps of 1k / 10k / 50k Services, each beside
# baselines measured in the same run on the same file (cat, wc -l, iptables-restore --test in a
# fresh network namespace when run as root), plus each command's peak RSS and the fitted growth
# exponents.
# Usage: benches/cli.sh [SIZES...]   (default: 1000 10000 50000). Needs hyperfine (Debian package).
# KPTRACE_BENCH_MODE=nftables times kube-proxy's nftables mode instead (the `add` form it writes,
# beside `nft -c -f` in a fresh namespace, given at most KPTRACE_BENCH_NFT_LIMIT seconds, 120 by
# default: nft's check grows with the square of the number of verdict maps).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin kptrace --example gendump
K=target/release/kptrace
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sizes=("${@:-1000 10000 50000}")
[ $# -eq 0 ] && sizes=(1000 10000 50000)
mode=${KPTRACE_BENCH_MODE:-iptables}
limit=${KPTRACE_BENCH_NFT_LIMIT:-120}
check="iptables-restore --test"
[ "$mode" = nftables ] && check="nft -c -f"
printf '| Services | MB | lines | cat | wc -l | %s |' "$check"
printf ' ls | svc (one) | lint | graph | peak RSS ls / svc / lint / graph | peak RSS ÷ dump |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n'
declare -A times
for n in "${sizes[@]}"; do
  f="$dir/$n.rules"
  target/release/examples/gendump --services "$n" --mode "$mode" > "$f"
  mb=$(( $(stat -c %s "$f") / 1000000 ))
  lines=$(wc -l < "$f")
  t() { hyperfine -N -w 1 -r 3 --export-json "$dir/h.json" "$@" >/dev/null 2>&1; python3 -c "import json;print('%.3f s' % json.load(open('$dir/h.json'))['results'][0]['mean'])"; }
  cat_t=$(t "cat $f")
  wc_t=$(t "wc -l $f")
  restore_t="–"
  if [ "$(id -u)" = 0 ] && command -v iptables-restore >/dev/null && command -v nft >/dev/null; then
    ns="kpt-bench-$$"
    ip netns add "$ns"
    if [ "$mode" = nftables ]; then
      s=$(date +%s.%N)
      if ip netns exec "$ns" timeout "$limit" nft -c -f "$f"; then
        e=$(date +%s.%N); restore_t=$(python3 -c "print('%.3f s' % ($e - $s))")
      else
        restore_t="> $limit s"
      fi
    else
      s=$(date +%s.%N); ip netns exec "$ns" iptables-restore --test "$f"; e=$(date +%s.%N)
      restore_t=$(python3 -c "print('%.3f s' % ($e - $s))")
    fi
    ip netns del "$ns"
  fi
  mean() { python3 -c "import json;print(json.load(open('$dir/h.json'))['results'][0]['mean'])"; }
  ls_t=$(t "$K ls $f"); times[ls:$n]=$(mean)
  svc_t=$(t "$K svc ns7/svc7 $f"); times[svc:$n]=$(mean)
  lint_t=$(t "$K lint --fail-on never -f json $f"); times[lint:$n]=$(mean)
  graph_t=$(t "$K graph $f"); times[graph:$n]=$(mean)
  # /usr/bin/time reports KiB; RSS is shown in MB (10^6 bytes), as the dump's size is, and each
  # ratio is bytes over bytes.
  rss() { { /usr/bin/time -f '%M' "$K" "$@" >/dev/null; } 2>&1 | tail -1; }
  rss_ls=$(rss ls "$f"); rss_svc=$(rss svc ns7/svc7 "$f"); rss_lint=$(rss lint --fail-on never -f json "$f"); rss_graph=$(rss graph "$f")
  bytes=$(stat -c %s "$f")
  mbs=$(python3 -c "print(' / '.join(str(round(k * 1024 / 1e6)) for k in [$rss_ls, $rss_svc, $rss_lint, $rss_graph]))")
  ratios=$(python3 -c "print(' / '.join('%.2f' % (k * 1024 / $bytes) for k in [$rss_ls, $rss_svc, $rss_lint, $rss_graph]))")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s MB | %s |\n' "$n" "$mb" "$lines" "$cat_t" "$wc_t" "$restore_t" "$ls_t" "$svc_t" "$lint_t" "$graph_t" "$mbs" "$ratios"
done
if [ "${#sizes[@]}" -ge 2 ]; then
  echo
  for cmd in ls svc lint graph; do
    args=""
    for n in "${sizes[@]}"; do args="$args $n:${times[$cmd:$n]}"; done
    python3 - "$cmd" $args <<'PY'
import math, sys
cmd, pts = sys.argv[1], [tuple(map(float, a.split(':'))) for a in sys.argv[2:]]
xs = [math.log(n) for n, _ in pts]; ys = [math.log(t) for _, t in pts]
mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
k = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
print(f"{cmd} time grows as n^{k:.2f} over {', '.join(str(int(n)) for n, _ in pts)} Services (1.0 = linear)")
PY
  done
fi
