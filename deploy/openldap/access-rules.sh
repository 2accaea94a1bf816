#!/usr/bin/env bash
# Prints the olcAccess lines of a generated database: first the rules of
# deploy/openldap/vmbackup-access.ldif (folded lines kept) for suffix BASE, then each
# further RULE, numbered on. scripts/dev-up.sh and the image's entrypoint use it, so both
# get the same service-identity rules an operator applies.
# Usage: access-rules.sh <vmbackup-access.ldif> <base DN> [RULE]...
set -euo pipefail
usage='usage: access-rules.sh <vmbackup-access.ldif> <base DN> [RULE]...'
ldif="${1:?$usage}"
base="${2:?$usage}"
shift 2
# The file is written for this suffix.
example='o=stepping-stone,c=ch'
count=0 in_rule=0
while IFS= read -r line || [[ -n "$line" ]]; do
  if [[ "$line" == olcAccess:* ]]; then
    in_rule=1
    count=$((count + 1))
  elif [[ "$line" != " "* ]]; then
    in_rule=0
  fi
  if ((in_rule)); then
    printf '%s\n' "${line//"$example"/"$base"}"
  fi
done <"$ldif"
((count > 0)) || { printf 'access-rules: no olcAccess in %s\n' "$ldif" >&2; exit 1; }
for rule in "$@"; do
  printf 'olcAccess: {%d}%s\n' "$count" "$rule"
  count=$((count + 1))
done
