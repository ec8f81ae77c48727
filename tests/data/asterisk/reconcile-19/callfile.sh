#!/bin/sh
# $1 name, then Setvar lines
name=$1; shift
f=/tmp/$name.call
{ echo "Channel: Local/311@from-citizen"; echo 'CallerID: "Maria Lopez" <7875550101>'; echo "Context: citizen-dialer"; echo "Extension: s"; echo "Priority: 1"; for v in "$@"; do echo "Setvar: $v"; done; } > $f
mv $f /opt/asterisk22-test/var/spool/outgoing/
