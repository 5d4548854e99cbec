import sys

from persistproc.cli import main

sys.exit(main())
