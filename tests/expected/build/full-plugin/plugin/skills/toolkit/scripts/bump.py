#!/usr/bin/env python3
"""Bumps the version in plugin.json."""
import json, sys
print(sys.argv[1:])
