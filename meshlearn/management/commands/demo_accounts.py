"""Create the demo learner and instructor and print their credentials."""

from django.core.management.base import BaseCommand

from meshlearn.services import demo_accounts_ensure


class Command(BaseCommand):
    help = "Create or reset the demo accounts (development only) and print their credentials."

    def handle(self, *args, **options) -> None:
        for account in demo_accounts_ensure():
            self.stdout.write(f"  {account.role:<10} username: {account.username:<11} password: {account.password}")
