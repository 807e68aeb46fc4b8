from experiments.runner import main

raise SystemExit(main())
