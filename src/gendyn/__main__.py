from gendyn.cli import main

raise SystemExit(main())
