from routeiq.cli import main

raise SystemExit(main())
