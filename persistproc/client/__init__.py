"""The command line client: talks to a running server over its JSON routes under /api/.

Standard library only, so that `persistproc list` starts fast and never loads the server's stack.
"""
