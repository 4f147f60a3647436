"""The parts of scripts/stack.py: paths, ports, Java, processes, env files, readiness."""
