#!/bin/sh
# Healthcheck of the vmbackup OpenLDAP image: the base entry can be read over the local
# socket (SASL EXTERNAL as root, so no password is needed).
exec ldapsearch -Q -LLL -Y EXTERNAL -H "${SLAPD_HEALTH_URL:-ldapi:///}" \
  -b "${LDAP_BASE_DN:-o=stepping-stone,c=ch}" -s base -o nettimeout=5 1.1 >/dev/null
