import sys

from eval.tasks import main

sys.exit(main())
