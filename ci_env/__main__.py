from ci_env.cli import main

raise SystemExit(main())
