from semrec.cli.main import main

main()
