#!/usr/bin/env bash
# Prints the size of build/<target>/bramble for each target given, as a Markdown table.
cd "$(dirname "$0")/../.."
echo "| target | bramble (bytes) | MiB |"
echo "|---|---:|---:|"
for t in "$@"; do
	f=build/$t/bramble
	if [ -f "$f" ]; then
		s=$(stat -c %s "$f")
		printf '| %s | %d | %.2f |\n' "$t" "$s" "$(echo "$s / 1048576" | bc -l)"
	else
		printf '| %s | (not built) | |\n' "$t"
	fi
done
