from aims.cli import main

raise SystemExit(main())
