#!/usr/bin/awk -f
# long-functions.awk - the C functions longer than MAX lines (default 80),
# counted from the first line of the signature to the closing brace (as
# `ctags --fields=+ne` counts them), one line each, longest first:
#     LINES NAME FILE:LINE
# then "N over MAX lines in F files". For the project's layout (a function
# body opens with a `{` alone at the start of a line, as in bpf/ and native/);
# strings, character constants, comments and preprocessor lines are skipped
# when braces are counted. Usage:
#     awk -v max=80 -f bpf/scripts/long-functions.awk FILE.c...
BEGIN {
	if (max == "")
		max = 80
	n_long = 0
}
FNR == 1 {
	files++
	depth = 0
	in_comment = 0
	in_macro = 0
	start = 0
	sig = ""
	body = 0
}
{
	raw = $0
	# a preprocessor line and its continuations hold no function body
	if (in_macro || (!in_comment && raw ~ /^[ \t]*#/)) {
		in_macro = raw ~ /\\$/
		next
	}
	line = strip(raw)
	if (depth == 0 && !body) {
		if (line ~ /^\{/) {
			if (start && sig ~ /[A-Za-z_][A-Za-z_0-9]*[ \t]*\(/) {
				body = 1
				fstart = start
				name = sig
				# SEC("xdp") and __attribute__((...)) are not the name
				gsub(/SEC\([^)]*\)|__attribute__\(\([^)]*\)\)/, "", name)
				sub(/[ \t]*\(.*/, "", name)
				sub(/.*[^A-Za-z_0-9]/, "", name)
			}
		} else if (line ~ /^[ \t]*$/) {
			start = 0
			sig = ""
		} else {
			if (!start)
				start = FNR
			sig = sig " " line
		}
	}
	opens = gsub(/\{/, "{", line)
	closes = gsub(/\}/, "}", line)
	depth += opens - closes
	if (body && depth == 0 && closes > 0) {
		len = FNR - fstart + 1
		if (len > max) {
			row[++n_long] = sprintf("%5d %s %s:%d", len, name, FILENAME, fstart)
			size[n_long] = len
		}
		body = 0
		start = 0
		sig = ""
	} else if (!body && depth == 0 && line ~ /[;}][ \t]*$/) {
		# the end of a declaration or an initializer: what follows starts anew
		start = 0
		sig = ""
	}
}
END {
	# longest first (insertion sort: a handful of rows)
	for (i = 2; i <= n_long; i++)
		for (j = i; j > 1 && size[j] > size[j - 1]; j--) {
			t = row[j]; row[j] = row[j - 1]; row[j - 1] = t
			t = size[j]; size[j] = size[j - 1]; size[j - 1] = t
		}
	for (i = 1; i <= n_long; i++)
		print row[i]
	printf "%d over %d lines in %d files\n", n_long, max, files
}

# The line without comments, strings and character constants (their braces
# do not count); a block comment may run over several lines.
function strip(s,    out, c, nx, q) {
	out = ""
	while (length(s) > 0) {
		if (in_comment) {
			q = index(s, "*/")
			if (!q)
				return out
			s = substr(s, q + 2)
			in_comment = 0
			continue
		}
		c = substr(s, 1, 1)
		nx = substr(s, 2, 1)
		if (c == "/" && nx == "/")
			return out
		if (c == "/" && nx == "*") {
			in_comment = 1
			s = substr(s, 3)
			continue
		}
		if (c == "\"" || c == "'") {
			s = substr(s, 2)
			while (length(s) > 0 && substr(s, 1, 1) != c)
				s = substr(s, substr(s, 1, 1) == "\\" ? 3 : 2)
			s = substr(s, 2)
			out = out c c
			continue
		}
		out = out c
		s = substr(s, 2)
	}
	return out
}
