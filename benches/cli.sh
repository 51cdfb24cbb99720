#!/usr/bin/env bash
# End-to-end timings of the kptrace CLI on generated dumps of 1k / 10k / 50k Services, each beside
# baselines measured in the same run on the same file (cat, wc -l, iptables-restore --test in a
# fresh network namespace when run as root), plus peak RSS and the fitted growth exponent.
# Usage: benches/cli.sh [SIZES...]   (default: 1000 10000 50000). Needs hyperfine (Debian package).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --bin kptrace --example gendump
K=target/release/kptrace
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
sizes=("${@:-1000 10000 50000}")
[ $# -eq 0 ] && sizes=(1000 10000 50000)
printf '| Services | MB | lines | cat | wc -l | iptables-restore --test | ls | svc (one) | lint | lint peak RSS |\n|---|---|---|---|---|---|---|---|---|---|\n'
declare -A lint_time
for n in "${sizes[@]}"; do
  f="$dir/$n.rules"
  target/release/examples/gendump --services "$n" > "$f"
  mb=$(( $(stat -c %s "$f") / 1000000 ))
  lines=$(wc -l < "$f")
  t() { hyperfine -N -w 1 -r 3 --export-json "$dir/h.json" "$@" >/dev/null 2>&1; python3 -c "import json;print('%.3f s' % json.load(open('$dir/h.json'))['results'][0]['mean'])"; }
  cat_t=$(t "cat $f")
  wc_t=$(t "wc -l $f")
  restore_t="–"
  if [ "$(id -u)" = 0 ] && command -v iptables-restore >/dev/null; then
    ns="kpt-bench-$$"
    ip netns add "$ns"
    s=$(date +%s.%N); ip netns exec "$ns" iptables-restore --test "$f"; e=$(date +%s.%N)
    ip netns del "$ns"
    restore_t=$(python3 -c "print('%.3f s' % ($e - $s))")
  fi
  ls_t=$(t "$K ls $f")
  svc_t=$(t "$K svc ns7/svc7 $f")
  lint_t=$(t "$K lint --fail-on never -f json $f")
  lint_time[$n]=$(python3 -c "import json;print(json.load(open('$dir/h.json'))['results'][0]['mean'])")
  rss=$( { /usr/bin/time -f '%M' "$K" lint --fail-on never -f json "$f" >/dev/null; } 2>&1 | tail -1)
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s MB |\n' "$n" "$mb" "$lines" "$cat_t" "$wc_t" "$restore_t" "$ls_t" "$svc_t" "$lint_t" "$((rss / 1024))"
done
if [ "${#sizes[@]}" -ge 2 ]; then
  args=""
  for n in "${sizes[@]}"; do args="$args $n:${lint_time[$n]}"; done
  python3 - $args <<'PY'
import math, sys
pts = [tuple(map(float, a.split(':'))) for a in sys.argv[1:]]
xs = [math.log(n) for n, _ in pts]; ys = [math.log(t) for _, t in pts]
mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
k = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
print(f"\nlint time grows as n^{k:.2f} over {', '.join(str(int(n)) for n, _ in pts)} Services (1.0 = linear)")
PY
fi
