from mlconnector.cli import main

main()
