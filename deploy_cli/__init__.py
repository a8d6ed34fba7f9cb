"""The command line around deploy.py's sample: settings, sign-in, progress, --check, hints, commands."""
