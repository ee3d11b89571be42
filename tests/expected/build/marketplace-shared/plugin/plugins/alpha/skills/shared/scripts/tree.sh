#!/bin/sh
# Prints the supervision tree of a running node.
echo "tree"
