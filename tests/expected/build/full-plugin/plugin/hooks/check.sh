#!/bin/sh
# Checks the changelog after an edit.
exit 0
