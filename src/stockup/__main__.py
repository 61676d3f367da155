from stockup.cli.app import main

raise SystemExit(main())
