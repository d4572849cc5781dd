from selfpref.cli import main

main()
