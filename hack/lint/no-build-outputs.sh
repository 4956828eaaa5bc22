#!/usr/bin/env bash
# Fails when the repository tracks a build output: an ELF binary, or any file over 1 MiB.
# Binaries belong in bin/ (ignored); test data that large belongs in a generator.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
bad=0
while IFS= read -r -d '' f; do
  [ -f "$f" ] || continue
  if [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ]; then
    echo "tracked ELF binary: $f (build outputs go to bin/, which is ignored)"; bad=1
  fi
  size=$(stat -c %s "$f")
  if [ "$size" -gt 1048576 ]; then
    echo "tracked file over 1 MiB: $f ($size bytes)"; bad=1
  fi
done < <(git ls-files -z)
exit $bad
