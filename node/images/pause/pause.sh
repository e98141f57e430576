#!/bin/sh
# The pod sandbox (skiff/pause:local): holds the pod's network namespace and
# does nothing else. As PID 1 it gets no default signal handling, so a plain
# `sleep` would ignore SIGTERM until Docker's kill timeout: trap TERM and INT,
# and sleep in the background so `wait` returns as soon as a signal arrives.
trap 'exit 0' TERM INT
while :; do
  sleep 3600 &
  wait $!
done
