import sys

from hexa._cli import main

sys.exit(main())
