#!/bin/sh
# Seeds each fuzz target's corpus with every fixture, once per input form (the first byte of a
# fuzz input picks the form: 0 detect, 1 save, 2 script, 3 listing).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
for target in parse trace lint; do
    dir="$here/corpus/$target"
    mkdir -p "$dir"
    find "$here/../fixtures" -type f ! -name '*.json' ! -name '*.md' ! -name '*.png' | while read -r f; do
        name=$(echo "$f" | sed "s|$here/../fixtures/||; s|/|_|g")
        for form in 0 1 2 3; do
            # Conformance dumps are many and alike: detection only.
            case "$f" in */conformance/*) [ "$form" = 0 ] || continue ;; esac
            { printf "\\$(printf '%03o' "$form")"; cat "$f"; } > "$dir/$form-$name"
        done
    done
done
echo "corpus: $(ls "$here/corpus/parse" | wc -l) inputs per target"
